// Lint fixture: an External module; it is not listed in the .uplugin, which is allowed.
using System.IO;
using UnrealBuildTool;

public class MMOCoreRust : ModuleRules
{
	public MMOCoreRust(ReadOnlyTargetRules Target) : base(Target)
	{
		Type = ModuleType.External;
		PublicIncludePaths.Add(Path.Combine(ModuleDirectory, "include"));
	}
}
