// The MMOCore module: defines LogMMO and refuses a library whose ABI version differs from
// the header the plugin was compiled against (the error names both versions).
#include "MMOCoreModule.h"

#include "Logic/Diagnostics.h"
#include "MMOLog.h"
#include "Modules/ModuleManager.h"

DEFINE_LOG_CATEGORY(LogMMO);

void FMMOCoreModule::StartupModule()
{
	const std::string Mismatch = mmo::ue::abi_check();
	bLibraryCompatible = Mismatch.empty();
	if (!bLibraryCompatible)
	{
		UE_LOG(LogMMO, Error, TEXT("%s"), UTF8_TO_TCHAR(Mismatch.c_str()));
		return;
	}
	UE_LOG(LogMMO, Log, TEXT("MMOCore: mmo library ABI version %u"), static_cast<uint32>(mmo_abi_version()));
}

void FMMOCoreModule::ShutdownModule()
{
	bLibraryCompatible = false;
}

IMPLEMENT_MODULE(FMMOCoreModule, MMOCore)
