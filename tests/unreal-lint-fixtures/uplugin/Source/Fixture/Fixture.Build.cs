using UnrealBuildTool;

public class Fixture : ModuleRules
{
	public Fixture(ReadOnlyTargetRules Target) : base(Target)
	{
		PublicDependencyModuleNames.AddRange(new string[] { "Core", "CoreUObject", "Engine" });
	}
}
