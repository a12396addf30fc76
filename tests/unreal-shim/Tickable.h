// Stand-in for Unreal's Tickable.h (see shim/ShimCore.h).
#pragma once
#include "shim/ShimEngine.h"
