// Stand-in for Unreal's Components/CapsuleComponent.h (see shim/ShimCore.h).
#pragma once
#include "../shim/ShimEngine.h"
