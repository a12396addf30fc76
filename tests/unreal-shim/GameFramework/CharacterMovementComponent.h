// Stand-in for Unreal's GameFramework/CharacterMovementComponent.h (see shim/ShimCore.h).
#pragma once
#include "../shim/ShimEngine.h"
