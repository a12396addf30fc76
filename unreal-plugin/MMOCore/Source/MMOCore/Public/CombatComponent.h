// Abilities and combat of the local character: ability requests go to the server over the
// library (ServerExecuteAbility is a request over the mmo C ABI, not an Unreal RPC), their
// answers and the combat events near the character come back through the event routing.
#pragma once

#include "CoreMinimal.h"
#include "Components/ActorComponent.h"
#include "CombatComponent.generated.h"

/** Something that happened in combat (the library's COMBAT event). */
USTRUCT(BlueprintType)
struct MMOCORE_API FMMOCombatEvent
{
	GENERATED_BODY()

	UPROPERTY(BlueprintReadOnly, Category = "MMO|Combat")
	int32 SourceEntityId = 0;

	UPROPERTY(BlueprintReadOnly, Category = "MMO|Combat")
	int32 TargetEntityId = 0;

	/** The ability that caused it, or -1 (respawns, items). */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Combat")
	int32 AbilityId = -1;

	/** mmo_combat_kind: 1 damage, 2 heal, 3 died, 4 damage over time, 5 slowed, 6 knocked back, 7 respawned. */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Combat")
	int32 Kind = 0;

	/** Damage or heal points. */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Combat")
	int32 Amount = 0;

	UPROPERTY(BlueprintReadOnly, Category = "MMO|Combat")
	int32 TargetHealth = 0;

	UPROPERTY(BlueprintReadOnly, Category = "MMO|Combat")
	int32 TargetHealthMax = 0;

	/** Knockback distance, cm. */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Combat")
	float KnockbackCm = 0.0f;

	UPROPERTY(BlueprintReadOnly, Category = "MMO|Combat")
	int32 ServerTick = 0;
};

DECLARE_DYNAMIC_MULTICAST_DELEGATE_OneParam(FMMOCombatEventSignature, const FMMOCombatEvent&, Event);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_FourParams(FMMOAbilityResultSignature, int32, RequestId, int32, AbilityId, bool, bAccepted, const FString&, RefusalKind);

UCLASS(ClassGroup = (MMO), meta = (BlueprintSpawnableComponent))
class MMOCORE_API UCombatComponent : public UActorComponent
{
	GENERATED_BODY()

public:
	virtual void BeginPlay() override;
	virtual void EndPlay(const EEndPlayReason::Type EndPlayReason) override;

	/** Asks the server to use AbilityID (0..65535) on an entity (TargetEntityId > 0) or on the caster (0). Returns the request number echoed by OnAbilityResult, or 0 when it could not be sent (logged). */
	UFUNCTION(BlueprintCallable, Category = "MMO|Combat")
	int32 ServerExecuteAbility(int32 AbilityID, int32 TargetEntityId);

	/** Same, aimed at a ground point (Unreal location, cm). */
	UFUNCTION(BlueprintCallable, Category = "MMO|Combat")
	int32 ServerExecuteAbilityAtLocation(int32 AbilityID, FVector TargetLocation);

	/** Cooldowns left on AbilityID now, seconds (global and the ability's own); false without a session. */
	UFUNCTION(BlueprintCallable, Category = "MMO|Combat")
	bool GetCooldownRemaining(int32 AbilityID, float& OutGlobalSeconds, float& OutOwnSeconds) const;

	/** No cooldown left on AbilityID (false without a session). */
	UFUNCTION(BlueprintPure, Category = "MMO|Combat")
	bool IsAbilityReady(int32 AbilityID) const;

	/** The latest combat events (newest last, at most 16). */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Combat")
	TArray<FMMOCombatEvent> RecentEvents;

	/** Damage the local character took so far, points. */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Combat")
	int32 DamageTaken = 0;

	/** Every combat event near (or on) the local character. */
	UPROPERTY(BlueprintAssignable, Category = "MMO|Combat")
	FMMOCombatEventSignature OnCombatEvent;

	/** Damage events only (to anyone the character sees, the character included). */
	UPROPERTY(BlueprintAssignable, Category = "MMO|Combat")
	FMMOCombatEventSignature OnDamage;

	/** The server's answer to ServerExecuteAbility. */
	UPROPERTY(BlueprintAssignable, Category = "MMO|Combat")
	FMMOAbilityResultSignature OnAbilityResult;

	/** Most events kept in RecentEvents. */
	static constexpr int32 MaxRecentEvents = 16;

private:
	uint64 CombatSubscription = 0;
	uint64 AbilitySubscription = 0;
};
