// UMMODeveloperSettings: lists the settings under Project Settings > Plugins.
#include "MMODeveloperSettings.h"

FName UMMODeveloperSettings::GetCategoryName() const
{
	return TEXT("Plugins");
}
