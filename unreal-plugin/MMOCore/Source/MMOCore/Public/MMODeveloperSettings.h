// Project settings of the MMOCore plugin (Project Settings > Plugins > MMO Core, stored in
// DefaultGame.ini): where the server is, which certificate to trust, the simulation rate,
// the interpolation delay and which actor class stands for each archetype.
#pragma once

#include "CoreMinimal.h"
#include "Engine/DeveloperSettings.h"
#include "MMORemoteCharacter.h"
#include "MMODeveloperSettings.generated.h"

UCLASS(config = Game, defaultconfig, meta = (DisplayName = "MMO Core"))
class MMOCORE_API UMMODeveloperSettings : public UDeveloperSettings
{
	GENERATED_BODY()

public:
	virtual FName GetCategoryName() const override;

	/** Host name or IP address of the game server's QUIC endpoint. */
	UPROPERTY(config, EditAnywhere, BlueprintReadOnly, Category = "Connection")
	FString ServerAddress = TEXT("127.0.0.1");

	/** UDP port of the QUIC endpoint (1..65535; the server's default is 7777). */
	UPROPERTY(config, EditAnywhere, BlueprintReadOnly, Category = "Connection", meta = (ClampMin = "1", ClampMax = "65535"))
	int32 ServerPort = 7777;

	/** SHA-256 of the server certificate (64 hex digits): the client trusts exactly that certificate. */
	UPROPERTY(config, EditAnywhere, BlueprintReadOnly, Category = "Connection")
	FString CertificateFingerprint;

	/** Simulation ticks per second at which inputs are sent (must match the server's tick, default 30). */
	UPROPERTY(config, EditAnywhere, BlueprintReadOnly, Category = "Simulation", meta = (ClampMin = "1", ClampMax = "120"))
	int32 TickRateHz = 30;

	/** Smallest render delay of remote entities, milliseconds; the library raises it with measured jitter. */
	UPROPERTY(config, EditAnywhere, BlueprintReadOnly, Category = "Interpolation", meta = (ClampMin = "0", ClampMax = "1000"))
	int32 InterpolationDelayMs = 20;

	/** After this long with nothing from the server (not even transport acknowledgements), the net subsystem resumes the session over a new connection to the same address (a fleet's gateway died), milliseconds; 0 disables resuming. */
	UPROPERTY(config, EditAnywhere, BlueprintReadOnly, Category = "Connection", meta = (ClampMin = "0", ClampMax = "60000"))
	int32 ResumeAfterSilenceMs = 1000;

	/** Actor class spawned for each entity archetype the server reports. */
	UPROPERTY(config, EditAnywhere, BlueprintReadOnly, Category = "Entities")
	TMap<int32, TSubclassOf<AMMORemoteCharacter>> ArchetypeClasses;

	/** Actor class for archetypes missing from ArchetypeClasses (none: AMMORemoteCharacter). */
	UPROPERTY(config, EditAnywhere, BlueprintReadOnly, Category = "Entities")
	TSubclassOf<AMMORemoteCharacter> DefaultRemoteClass;
};
