// Lint fixture: the one Runtime module of the clean tree.
using UnrealBuildTool;

public class LintClean : ModuleRules
{
	public LintClean(ReadOnlyTargetRules Target) : base(Target)
	{
		PCHUsage = PCHUsageMode.UseExplicitOrSharedPCHs;
		PublicDependencyModuleNames.AddRange(new string[] { "Core", "CoreUObject", "Engine", "NetCore" });
		PrivateDependencyModuleNames.Add("MMOCoreRust");
	}
}
