// Drives the MMOCore plugin's real UObject classes, compiled against the engine shim and
// linked with the mmo static library, through a session with a real server:
// the module's ABI check, the `mmo.stats` command and overlay, the subsystem's refusal of a
// bad fingerprint, then connect, the character's components filled by routed events
// (resources, inventory), predicted movement placing the actor, a refused inventory move
// answered through OnInventoryResult, and a clean disconnect through OnDisconnected.
//
// Usage: plugin_driver HOST PORT FINGERPRINT_HEX TOKEN
// Ends with "N passed, N failed" (tests/c/check.h) and "plugin_driver: ok ...".
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "CombatComponent.h"
#include "InventoryComponent.h"
#include "MMOCoreModule.h"
#include "MMONetSubsystem.h"
#include "MMOPredictedMovementComponent.h"
#include "MMORPGCharacter.h"
#include "ResourceSystemComponent.h"
#include "check.h"

IModuleInterface *ShimCreateModule_MMOCore();

namespace {

using Clock = std::chrono::steady_clock;

/// Ticks the subsystem and the character like frames (10 ms) until `done` or 10 s.
bool run_frames(UMMONetSubsystem &net, AActor &character, const std::function<bool()> &done,
                const std::function<void()> &each_frame = nullptr) {
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
        if (each_frame) {
            each_frame();
        }
        if (net.IsTickable()) {
            net.Tick(0.01f);
        }
        character.ShimTick(0.01f);
        if (done()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

} // namespace

int main(int argc, char **argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: plugin_driver HOST PORT FINGERPRINT_HEX TOKEN\n");
        return 2;
    }
    const int32 port = static_cast<int32>(std::strtol(argv[2], nullptr, 10));

    // The module accepts the library it is linked with, logging no error.
    std::unique_ptr<IModuleInterface> module(ShimCreateModule_MMOCore());
    module->StartupModule();
    CHECK(static_cast<FMMOCoreModule *>(module.get())->IsLibraryCompatible());
    CHECK(GShimLogCounts[ELogVerbosity::Error] == 0);

    UEngine engine;
    GEngine = &engine;
    UGameInstance instance;
    UWorld world(&instance);
    instance.World = &world;
    UMMONetSubsystem *net = instance.ShimAddSubsystem<UMMONetSubsystem>();
    CHECK(net != nullptr && net->GetNetState() != nullptr);
    AMMORPGCharacter *character = world.SpawnActor<AMMORPGCharacter>(
        AMMORPGCharacter::StaticClass(), FVector(0, 0, 0), FRotator::ZeroRotator);
    CHECK(character != nullptr);
    CHECK(character->PredictedMovement->OriginAboveBaseCm == 88.0f);

    int connected = 0, disconnected = 0, inventory_changes = 0, resources_changes = 0;
    int32 disconnect_reason = -1;
    FString refusal;
    int32 refused_request = -1;
    net->OnConnected.ShimAdd([&](int32) { ++connected; });
    net->OnDisconnected.ShimAdd([&](int32 reason, const FString &) {
        ++disconnected;
        disconnect_reason = reason;
    });
    character->Inventory->OnInventoryChanged.ShimAdd([&] { ++inventory_changes; });
    character->Inventory->OnInventoryResult.ShimAdd(
        [&](int32 request, bool accepted, const FString &kind, const FString &) {
            if (!accepted) {
                refused_request = request;
                refusal = kind;
            }
        });
    character->Resources->OnResourcesChanged.ShimAdd([&] { ++resources_changes; });

    // A fingerprint that is not 64 hex digits is refused at once with a logged error.
    const int errors_before = GShimLogCounts[ELogVerbosity::Error];
    CHECK(!net->ConnectTo(argv[1], port, "not-a-fingerprint", argv[4]));
    CHECK(GShimLogCounts[ELogVerbosity::Error] == errors_before + 1);
    CHECK(!net->ConnectTo(argv[1], 70000, argv[3], argv[4]));
    CHECK(character->Combat->ServerExecuteAbility(0, 0) == 0); // no session yet

    // Connect: the welcome, the pools and the inventory reach the components.
    CHECK(net->ConnectTo(argv[1], port, argv[3], argv[4]));
    CHECK(!net->ConnectTo(argv[1], port, argv[3], argv[4])); // one session at a time
    const bool logged_in = run_frames(*net, *character, [&] {
        return connected == 1 && inventory_changes > 0 && resources_changes > 0;
    });
    CHECK(logged_in);
    CHECK(net->IsConnected() && net->LocalEntityId > 0);
    CHECK(character->Resources->Pools.Num() > 0);
    CHECK(character->Resources->GetPoolFraction(0) == 1.0f);
    CHECK(character->Inventory->Slots.Num() > 0);
    CHECK(character->Inventory->Equipment.Num() == 9);
    float global_s = -1.0f, own_s = -1.0f;
    CHECK(character->Combat->GetCooldownRemaining(0, global_s, own_s));
    CHECK(global_s == 0.0f && own_s == 0.0f);
    CHECK(character->Combat->IsAbilityReady(0));

    // Walk forward: inputs go out, the actor moves along +X (centimetres).
    const FVector start = character->GetActorLocation();
    run_frames(*net, *character,
               [&] { return character->PredictedMovement->InputsSent >= 15; },
               [&] { character->PredictedMovement->AddMoveInput(1.0f, 0.0f); });
    CHECK(character->PredictedMovement->InputsSent >= 15);
    const double walked_cm = character->GetActorLocation().X - start.X;
    CHECK(walked_cm > 10.0);

    // The stats overlay: `mmo.stats` toggles it, the subsystem draws it.
    CHECK(FAutoConsoleCommand::ShimExecute("mmo.stats"));
    run_frames(*net, *character, [&] { return engine.ShimScreenMessages > 0; });
    CHECK(std::string(*engine.ShimLastScreenMessage).rfind("MMO rtt ", 0) == 0);
    CHECK(FAutoConsoleCommand::ShimExecute("mmo.stats"));

    // A bad slot is refused by the server; the answer reaches OnInventoryResult.
    const int32 request = character->Inventory->MoveItem(999, 1);
    CHECK(request > 0);
    CHECK(character->Inventory->MoveItem(-1, 1) == 0);
    run_frames(*net, *character, [&] { return refused_request == request; });
    CHECK(refused_request == request);
    CHECK(refusal == FString("inventory_bad_slot"));

    // Leave: OnDisconnected with client_quit (1), and the session is released.
    net->Disconnect();
    run_frames(*net, *character, [&] { return disconnected == 1 && !net->IsTickable(); });
    // 1 is MMO_DISCONNECT_REASON_CLIENT_QUIT (the public headers do not expose mmo.h).
    CHECK(disconnected == 1 && disconnect_reason == 1);
    CHECK(!net->IsConnected() && net->LocalEntityId == 0);

    character->Destroy();
    CHECK(world.ShimActorCount() == 0);
    instance.ShimShutdown();
    module->ShutdownModule();
    GEngine = nullptr;
    std::printf("plugin_driver: ok walked_cm=%.1f refusal=%s\n", walked_cm, *refusal);
    return CHECK_REPORT();
}
