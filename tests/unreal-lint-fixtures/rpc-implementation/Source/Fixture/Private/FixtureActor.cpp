#include "FixtureActor.h"

#include "Net/UnrealNetwork.h"

void AFixtureActor::GetLifetimeReplicatedProps(TArray<FLifetimeProperty>& OutLifetimeProps) const
{
	Super::GetLifetimeReplicatedProps(OutLifetimeProps);
	DOREPLIFETIME(AFixtureActor, Health);
}

void AFixtureActor::ServerFire_Implementation(int32 AbilityId)
{
}

void AFixtureActor::OnRep_Health()
{
}
