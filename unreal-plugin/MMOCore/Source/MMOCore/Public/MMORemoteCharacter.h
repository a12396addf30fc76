// A remote entity (another player, an NPC) drawn where the library's interpolation buffer
// says, each frame; spawned and destroyed by UMMONetSubsystem's entity manager.
#pragma once

#include "CoreMinimal.h"
#include "GameFramework/Character.h"
#include "MMORemoteCharacter.generated.h"

UCLASS(Blueprintable)
class MMOCORE_API AMMORemoteCharacter : public ACharacter
{
	GENERATED_BODY()

public:
	AMMORemoteCharacter();

	/** Called by the entity manager right after spawning: which entity this actor shows. */
	void InitRemote(int32 InEntityId, int32 InArchetype);

	virtual void Tick(float DeltaSeconds) override;

	/** The server's entity id (0 before InitRemote). */
	UPROPERTY(BlueprintReadOnly, Category = "MMO")
	int32 EntityId = 0;

	/** The archetype the server gave at spawn. */
	UPROPERTY(BlueprintReadOnly, Category = "MMO")
	int32 Archetype = 0;

	/** True while the library extrapolates (packets late) or holds the last position. */
	UPROPERTY(BlueprintReadOnly, Category = "MMO")
	bool bExtrapolating = false;

	/** Health in percent of the maximum from the snapshots (100 until the server says otherwise). */
	UPROPERTY(BlueprintReadOnly, Category = "MMO")
	int32 HealthPercent = 100;
};
