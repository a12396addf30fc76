// Stand-in for Unreal's Modules/ModuleManager.h (see shim/ShimCore.h).
#pragma once
#include "../shim/ShimEngine.h"
