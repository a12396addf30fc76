// Build rules of the MMOCore runtime module: the UObject adapters and the engine-free logic
// (Private/Logic). Only this module links the Rust library, through the private External
// module MMOCoreRust, so game modules that use MMOCore never see mmo.h.

using UnrealBuildTool;

public class MMOCore : ModuleRules
{
	public MMOCore(ReadOnlyTargetRules Target) : base(Target)
	{
		PCHUsage = PCHUsageMode.UseExplicitOrSharedPCHs;
		// mmo.hpp is written for C++17; the engine's default (C++20) compiles it too.
		CppStandard = CppStandardVersion.Default;

		PublicDependencyModuleNames.AddRange(new string[]
		{
			"Core",
			"CoreUObject",
			"Engine",
			"NetCore",
			"DeveloperSettings",
		});

		PrivateDependencyModuleNames.AddRange(new string[]
		{
			"MMOCoreRust",
		});
	}
}
