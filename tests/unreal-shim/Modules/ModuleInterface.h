// Stand-in for Unreal's Modules/ModuleInterface.h (see shim/ShimCore.h).
#pragma once
#include "../shim/ShimEngine.h"
