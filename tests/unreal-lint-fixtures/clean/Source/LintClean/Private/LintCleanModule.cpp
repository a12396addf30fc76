// Lint fixture: the module's startup file.
#include "Modules/ModuleManager.h"

IMPLEMENT_MODULE(FDefaultModuleImpl, LintClean)
