#include "FixtureActor.h"

#include "Net/UnrealNetwork.h"

void AFixtureActor::GetLifetimeReplicatedProps(TArray<FLifetimeProperty>& OutLifetimeProps) const
{
	Super::GetLifetimeReplicatedProps(OutLifetimeProps);
	DOREPLIFETIME(AFixtureActor, Health);
}

bool AFixtureActor::ServerFire_Validate(int32 AbilityId)
{
	return AbilityId >= 0;
}

void AFixtureActor::ServerFire_Implementation(int32 AbilityId)
{
}

void AFixtureActor::OnRep_Health()
{
}
