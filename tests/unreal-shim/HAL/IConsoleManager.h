// Stand-in for Unreal's HAL/IConsoleManager.h (see shim/ShimCore.h).
#pragma once
#include "../shim/ShimEngine.h"
