// Automation Spec tests of the MMOCore plugin, for projects that have Unreal Engine:
//   UnrealEditor-Cmd <project> -ExecCmds="Automation RunTests MMOCore; Quit" -nullrhi -unattended -nopause -testexit="Automation Test Queue Empty"
// They need the engine and are NOT run by this repository's test suite (no engine there);
// the shim build compiles this file with WITH_DEV_AUTOMATION_TESTS=0, where it is empty.
// The same helpers are run without the engine by tests/c/unreal_logic_client.cpp.
// WITH_DEV_AUTOMATION_TESTS comes from Misc/Build.h: include before testing it, or a
// non-unity, non-PCH build would see it undefined and compile the specs away.
#include "CoreMinimal.h"
#include "Misc/AutomationTest.h"

#if WITH_DEV_AUTOMATION_TESTS

#include "Logic/Diagnostics.h"
#include "Logic/EventRouter.h"
#include "Logic/Units.h"
#include "MMODeveloperSettings.h"

BEGIN_DEFINE_SPEC(FMMOCoreSpec, "MMOCore", EAutomationTestFlags::ApplicationContextMask | EAutomationTestFlags::ProductFilter)
END_DEFINE_SPEC(FMMOCoreSpec)

void FMMOCoreSpec::Define()
{
	Describe("Library", [this]()
	{
		It("has the ABI of the header the plugin was built with", [this]()
		{
			TestTrue(TEXT("abi_check is empty"), mmo::ue::abi_check().empty());
		});
	});

	Describe("Units", [this]()
	{
		It("converts an FVector in centimetres to metres on the same axes", [this]()
		{
			const mmo_vec3 Core = mmo::ue::location_to_core(FVector(12345.0, -250.0, 88.0));
			TestEqual(TEXT("X"), Core.x, 123.45f);
			TestEqual(TEXT("Y"), Core.y, -2.5f);
			TestEqual(TEXT("Z"), Core.z, 0.88f);
		});

		It("converts metres back to an FVector in centimetres", [this]()
		{
			const FVector Back = mmo::ue::location_from_core<FVector>(mmo_vec3{1.5f, -2.25f, 0.5f});
			TestEqual(TEXT("location"), Back, FVector(150.0, -225.0, 50.0));
		});

		It("maps Unreal yaw degrees to core radians in [0, 2*pi) and back", [this]()
		{
			TestEqual(TEXT("-90 deg"), mmo::ue::yaw_deg_to_core_rad(-90.0), static_cast<float>(mmo::ue::kPi * 1.5));
			TestEqual(TEXT("back"), mmo::ue::core_rad_to_yaw_deg(mmo::ue::yaw_deg_to_core_rad(-90.0)), -90.0, 1e-4);
		});
	});

	Describe("Event routing", [this]()
	{
		It("sends a chat event to chat handlers only", [this]()
		{
			mmo::ue::EventRouter Router;
			int32 Chat = 0;
			int32 Combat = 0;
			Router.subscribe(mmo::ue::EventChannel::Chat, [&Chat](const mmo::ClientEvent&) { ++Chat; });
			Router.subscribe(mmo::ue::EventChannel::Combat, [&Combat](const mmo::ClientEvent&) { ++Combat; });
			mmo::ClientEvent Event;
			Event.event.kind = MMO_CLIENT_EVENT_KIND_CHAT;
			Router.dispatch(Event);
			TestEqual(TEXT("chat handlers"), Chat, 1);
			TestEqual(TEXT("combat handlers"), Combat, 0);
		});
	});

	Describe("Settings", [this]()
	{
		It("defaults to the server's port and tick rate", [this]()
		{
			const UMMODeveloperSettings* Settings = GetDefault<UMMODeveloperSettings>();
			TestEqual(TEXT("port"), Settings->ServerPort, 7777);
			TestEqual(TEXT("tick rate"), Settings->TickRateHz, 30);
		});
	});
}

#endif // WITH_DEV_AUTOMATION_TESTS
