// Stand-in for Unreal's Engine/GameInstance.h (see shim/ShimCore.h).
#pragma once
#include "../shim/ShimEngine.h"
