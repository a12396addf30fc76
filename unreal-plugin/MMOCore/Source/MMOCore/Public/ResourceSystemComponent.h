// The local character's resource pools (health, mana, stamina... as the server's content
// defines them), kept up to date from the server's RESOURCES_CHANGED events.
#pragma once

#include "CoreMinimal.h"
#include "Components/ActorComponent.h"
#include "ResourceSystemComponent.generated.h"

/** One pool's value as the server last sent it. */
USTRUCT(BlueprintType)
struct MMOCORE_API FMMOPoolValue
{
	GENERATED_BODY()

	/** The content's pool id (default content: 0 health, 1 mana, 2 stamina). */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Resources")
	int32 PoolId = 0;

	UPROPERTY(BlueprintReadOnly, Category = "MMO|Resources")
	int32 Current = 0;

	UPROPERTY(BlueprintReadOnly, Category = "MMO|Resources")
	int32 Max = 0;
};

DECLARE_DYNAMIC_MULTICAST_DELEGATE(FMMOResourcesChangedSignature);

UCLASS(ClassGroup = (MMO), meta = (BlueprintSpawnableComponent))
class MMOCORE_API UResourceSystemComponent : public UActorComponent
{
	GENERATED_BODY()

public:
	virtual void BeginPlay() override;
	virtual void EndPlay(const EEndPlayReason::Type EndPlayReason) override;

	/** The pool with this id; false when the server has not sent it. */
	UFUNCTION(BlueprintCallable, Category = "MMO|Resources")
	bool GetPool(int32 PoolId, FMMOPoolValue& OutPool) const;

	/** Current / Max of a pool in [0, 1] (0 when unknown or Max is 0). */
	UFUNCTION(BlueprintPure, Category = "MMO|Resources")
	float GetPoolFraction(int32 PoolId) const;

	/** Every pool, as the server last sent them. */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Resources")
	TArray<FMMOPoolValue> Pools;

	UPROPERTY(BlueprintReadOnly, Category = "MMO|Resources")
	bool bDead = false;

	/** While dead: time until the respawn, ms. */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Resources")
	int32 RespawnInMs = 0;

	UPROPERTY(BlueprintAssignable, Category = "MMO|Resources")
	FMMOResourcesChangedSignature OnResourcesChanged;

	/** C++ only: re-reads the pools from the session (called by the event routing). */
	void RefreshFromSession();

private:
	uint64 Subscription = 0;
};
