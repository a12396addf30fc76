// Stand-in for Unreal's Subsystems/GameInstanceSubsystem.h (see shim/ShimCore.h).
#pragma once
#include "../shim/ShimEngine.h"
