// Stand-in for Unreal's CoreMinimal.h (see ShimCore.h).
#pragma once
#include "shim/ShimCore.h"
