// The `mmo.stats` console command: toggles the on-screen netcode stats (round trips, loss,
// snapshot delivery, bytes, corrections) that UMMONetSubsystem draws while it is on.
#include "MMOStatsOverlay.h"

#include "HAL/IConsoleManager.h"

namespace
{
/** Toggled by the command; read by the subsystem on the game thread. */
bool GMMOShowStats = false;

void ToggleStatsOverlay()
{
	GMMOShowStats = !GMMOShowStats;
}

FAutoConsoleCommand GMMOStatsCommand(
	TEXT("mmo.stats"),
	TEXT("Toggles the MMO netcode stats on screen (rtt, loss, snapshots, bytes, corrections)."),
	FConsoleCommandDelegate::CreateStatic(&ToggleStatsOverlay));
}

bool MMOIsStatsOverlayEnabled()
{
	return GMMOShowStats;
}
