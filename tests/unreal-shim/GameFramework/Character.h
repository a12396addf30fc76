// Stand-in for Unreal's GameFramework/Character.h (see shim/ShimCore.h).
#pragma once
#include "../shim/ShimEngine.h"
