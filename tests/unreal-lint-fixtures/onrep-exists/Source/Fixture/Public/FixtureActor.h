#pragma once

#include "CoreMinimal.h"
#include "GameFramework/Actor.h"
#include "FixtureActor.generated.h"

UCLASS()
class FIXTURE_API AFixtureActor : public AActor
{
	GENERATED_BODY()

public:
	virtual void GetLifetimeReplicatedProps(TArray<FLifetimeProperty>& OutLifetimeProps) const override;

	UFUNCTION(Server, Reliable, WithValidation)
	void ServerFire(int32 AbilityId);

protected:
	UPROPERTY(ReplicatedUsing = OnRep_Health)
	int32 Health = 100;

	// Declared, but not a UFUNCTION(): UHT cannot bind it.
	void OnRep_Health();
};
