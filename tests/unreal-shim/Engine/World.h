// Stand-in for Unreal's Engine/World.h (see shim/ShimCore.h).
#pragma once
#include "../shim/ShimEngine.h"
