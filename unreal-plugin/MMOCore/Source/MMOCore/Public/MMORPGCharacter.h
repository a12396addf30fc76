// The local player's character: the predicted movement, resource, combat and inventory
// components on an ACharacter whose own movement component is switched off (the library
// simulates movement exactly as the server does).
#pragma once

#include "CoreMinimal.h"
#include "GameFramework/Character.h"
#include "MMORPGCharacter.generated.h"

class UMMOPredictedMovementComponent;
class UResourceSystemComponent;
class UCombatComponent;
class UInventoryComponent;

UCLASS(Blueprintable)
class MMOCORE_API AMMORPGCharacter : public ACharacter
{
	GENERATED_BODY()

public:
	AMMORPGCharacter();

	virtual void BeginPlay() override;

	UPROPERTY(VisibleAnywhere, BlueprintReadOnly, Category = "MMO")
	TObjectPtr<UMMOPredictedMovementComponent> PredictedMovement;

	UPROPERTY(VisibleAnywhere, BlueprintReadOnly, Category = "MMO")
	TObjectPtr<UResourceSystemComponent> Resources;

	UPROPERTY(VisibleAnywhere, BlueprintReadOnly, Category = "MMO")
	TObjectPtr<UCombatComponent> Combat;

	UPROPERTY(VisibleAnywhere, BlueprintReadOnly, Category = "MMO")
	TObjectPtr<UInventoryComponent> Inventory;
};
