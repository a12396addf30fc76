// Stand-in for Unreal's GameFramework/Actor.h (see shim/ShimCore.h).
#pragma once
#include "../shim/ShimEngine.h"
