// Stand-in for Unreal's Engine/Engine.h (see shim/ShimCore.h).
#pragma once
#include "../shim/ShimEngine.h"
