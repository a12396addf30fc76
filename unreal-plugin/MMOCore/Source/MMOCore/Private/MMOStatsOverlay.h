// The `mmo.stats` console command's switch: when on, UMMONetSubsystem draws the netcode
// stats on screen every frame (MMOStatsOverlay.cpp registers the command).
#pragma once

#include "CoreMinimal.h"

/** True while `mmo.stats` is toggled on. */
bool MMOIsStatsOverlayEnabled();
