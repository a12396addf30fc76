// Lint fixture: the actor's definitions.
#include "LintCleanActor.h"

#include "Net/UnrealNetwork.h"

ALintCleanActor::ALintCleanActor()
{
	bReplicates = true;
	bIsDead = 0;
}

void ALintCleanActor::GetLifetimeReplicatedProps(TArray<FLifetimeProperty>& OutLifetimeProps) const
{
	Super::GetLifetimeReplicatedProps(OutLifetimeProps);

	DOREPLIFETIME(ALintCleanActor, Health);
	DOREPLIFETIME_CONDITION(ALintCleanActor, StaminaPercent, COND_OwnerOnly);
	DOREPLIFETIME_CONDITION_NOTIFY(ThisClass, Stats, COND_None, REPNOTIFY_Always);

	FDoRepLifetimeParams Params;
	Params.bIsPushBased = true;
	DOREPLIFETIME_WITH_PARAMS_FAST(ALintCleanActor, Counters, Params);
	DOREPLIFETIME(ALintCleanActor, bIsDead);
}

bool ALintCleanActor::ServerUseAbility_Validate(int32 AbilityId, const TArray<FVector>& Targets)
{
	return AbilityId >= 0 && Targets.Num() < 16;
}

void ALintCleanActor::ServerUseAbility_Implementation(int32 AbilityId, const TArray<FVector>& Targets)
{
	const FString Note = TEXT("not a definition: ALintCleanActor::Missing_Implementation() {");
	(void)Note;
}

void ALintCleanActor::ClientShowHit_Implementation(FVector LocationCm)
{
}

void ALintCleanActor::MulticastPlayEffect_Implementation()
{
}

void ALintCleanActor::OnRep_Health(int32 OldHealth)
{
	OnHealthChanged.Broadcast(Health);
}

void ALintCleanActor::OnRep_Stats()
{
}
