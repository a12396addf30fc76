// Lint fixture: an actor with every replication feature the lint checks, written the ways
// real code is written (multi-line specifiers, nested meta parentheses, comments).
#pragma once

#include "CoreMinimal.h"
#include "GameFramework/Actor.h"
#include "LintCleanTypes.h"
#include "LintCleanActor.generated.h"

/*
 * Commented-out declarations do not count:
 * UFUNCTION(Server, Reliable, WithValidation) void ServerGone(int32 X);
 * UPROPERTY(ReplicatedUsing = OnRep_Gone) int32 Gone;
 */

DECLARE_DYNAMIC_MULTICAST_DELEGATE_OneParam(FLintCleanChanged, int32, NewValue);

UCLASS(Blueprintable, meta = (DisplayName = "Lint Clean (Actor)", ToolTip = "A ) tricky ( tooltip"))
class LINTCLEAN_API ALintCleanActor : public AActor
{
	GENERATED_BODY()

public:
	ALintCleanActor();

	virtual void GetLifetimeReplicatedProps(TArray<FLifetimeProperty>& OutLifetimeProps) const override;

	// UFUNCTION(Server, Reliable) void ServerCommentedOut();

	/** Asks the server to use an ability. */
	UFUNCTION(
		Server,
		Reliable,
		WithValidation,
		meta = (ToolTip = "Calls (the server)")
	)
	void ServerUseAbility(int32 AbilityId, const TArray<FVector>& Targets);

	UFUNCTION(Client, Unreliable)
	void ClientShowHit(FVector LocationCm);

	UFUNCTION(NetMulticast, Reliable, BlueprintCallable, Category = "Lint")
	void MulticastPlayEffect();

	UFUNCTION(BlueprintCallable, Category = "Lint")
	int32 GetHealth() const { return Health; }

	/** Digit separators and char literals must not confuse the parser. */
	static constexpr int32 MaxHealth = 1'000;
	static constexpr char Quote = '"';

	UPROPERTY(BlueprintAssignable, Category = "Lint")
	FLintCleanChanged OnHealthChanged;

protected:
	UPROPERTY(ReplicatedUsing = OnRep_Health, BlueprintReadOnly, Category = "Lint")
	int32 Health = 100;

	UPROPERTY(Replicated, BlueprintReadOnly, Category = "Lint",
		meta = (ClampMin = "0", ClampMax = "(100)"))
	float StaminaPercent = 1.f;

	UPROPERTY(replicatedusing=OnRep_Stats)
	FLintCleanStats Stats;

	UPROPERTY(Replicated)
	TMap<FName, int32> Counters;

	UPROPERTY(Replicated)
	uint8 bIsDead : 1;

	UPROPERTY(NotReplicated, Transient)
	int32 LocalOnly = 0;

	UFUNCTION()
	void OnRep_Health(int32 OldHealth);

	UFUNCTION()
	void OnRep_Stats();
};
