// The plugin's log category, LogMMO (UObject adapters and the library's own log records,
// which the subsystem forwards).
#pragma once

#include "CoreMinimal.h"

MMOCORE_API DECLARE_LOG_CATEGORY_EXTERN(LogMMO, Log, All);
