// Stand-in for Unreal's Engine/DeveloperSettings.h (see shim/ShimCore.h).
#pragma once
#include "../shim/ShimEngine.h"
