// The prebuilt Rust library (mmo) as an External module: its headers and, per platform, the
// static library plus the system libraries the Rust standard library, tokio, quinn and ring
// need on that platform. The files are not in the repository: `bash ci/package-plugin.sh`
// builds the library for the host and copies include/ and lib/<Platform>/ here.

using System.IO;
using UnrealBuildTool;

public class MMOCoreRust : ModuleRules
{
	public MMOCoreRust(ReadOnlyTargetRules Target) : base(Target)
	{
		Type = ModuleType.External;

		string IncludeDir = Path.Combine(ModuleDirectory, "include");
		RequireFile(Path.Combine(IncludeDir, "mmo.h"));
		RequireFile(Path.Combine(IncludeDir, "mmo.hpp"));
		PublicSystemIncludePaths.Add(IncludeDir);

		string LibDir = Path.Combine(ModuleDirectory, "lib");
		if (Target.Platform == UnrealTargetPlatform.Win64)
		{
			string Library = Path.Combine(LibDir, "Win64", "mmo.lib");
			RequireFile(Library);
			PublicAdditionalLibraries.Add(Library);
			// `cargo rustc --lib -- --print native-static-libs` on x86_64-pc-windows-msvc.
			PublicSystemLibraries.AddRange(new string[]
			{
				"ws2_32.lib",
				"userenv.lib",
				"bcrypt.lib",
				"ntdll.lib",
				"advapi32.lib",
				"kernel32.lib",
				"dbghelp.lib",
			});
		}
		else if (Target.Platform == UnrealTargetPlatform.Linux)
		{
			string Library = Path.Combine(LibDir, "Linux", "libmmo.a");
			RequireFile(Library);
			PublicAdditionalLibraries.Add(Library);
			// `--print native-static-libs` on x86_64-unknown-linux-gnu; gcc_s carries the unwinder.
			PublicSystemLibraries.AddRange(new string[] { "gcc_s", "pthread", "dl", "m", "rt", "util" });
		}
		else if (Target.Platform == UnrealTargetPlatform.Mac)
		{
			string Library = Path.Combine(LibDir, "Mac", "libmmo.a");
			RequireFile(Library);
			PublicAdditionalLibraries.Add(Library);
			// Security: the platform verifier of rustls' dependencies; CoreFoundation: std
			// and Security; iconv: older Rust standard libraries on macOS link it.
			PublicFrameworks.AddRange(new string[] { "Security", "CoreFoundation" });
			PublicSystemLibraries.Add("iconv");
		}
		else
		{
			throw new BuildException(
				"MMOCoreRust: platform {0} is not supported (the plugin ships Win64, Linux and Mac libraries)",
				Target.Platform.ToString());
		}
	}

	/// Stops the build with the missing file and the command that produces it.
	private static void RequireFile(string FilePath)
	{
		if (!File.Exists(FilePath))
		{
			throw new BuildException(
				"MMOCoreRust: {0} is missing. Build the Rust library and lay out the plugin with " +
				"`bash ci/package-plugin.sh` from the repository root (on this platform's host), " +
				"then copy target/package/MMOCore into your project's Plugins folder.",
				FilePath);
		}
	}
}
