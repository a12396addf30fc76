// Stand-in for the engine's Misc/AutomationTest.h. The plugin's Automation Specs need the
// engine and are compiled here only with WITH_DEV_AUTOMATION_TESTS=0 (to empty files), so
// this header declares nothing; it exists so the include above that `#if` resolves.
#pragma once

#include "CoreMinimal.h"
