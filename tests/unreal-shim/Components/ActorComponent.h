// Stand-in for Unreal's Components/ActorComponent.h (see shim/ShimCore.h).
#pragma once
#include "../shim/ShimEngine.h"
