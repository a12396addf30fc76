// The MMOCore runtime module: checks at start-up that the linked mmo library has the ABI of
// the header the plugin was compiled against, and refuses to run the netcode otherwise.
#pragma once

#include "CoreMinimal.h"
#include "Modules/ModuleInterface.h"

/** The MMOCore module object (loaded by the engine; IMPLEMENT_MODULE in MMOCoreModule.cpp). */
class MMOCORE_API FMMOCoreModule : public IModuleInterface
{
public:
	virtual void StartupModule() override;
	virtual void ShutdownModule() override;

	/** True when StartupModule found the library's ABI version equal to MMO_ABI_VERSION. */
	bool IsLibraryCompatible() const { return bLibraryCompatible; }

private:
	/** Set by StartupModule; false until then and after a mismatch. */
	bool bLibraryCompatible = false;
};
