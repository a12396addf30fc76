// AMMORPGCharacter: makes the four MMO components and hands movement to the library.
#include "MMORPGCharacter.h"

#include "CombatComponent.h"
#include "Components/CapsuleComponent.h"
#include "GameFramework/CharacterMovementComponent.h"
#include "InventoryComponent.h"
#include "MMOPredictedMovementComponent.h"
#include "ResourceSystemComponent.h"

AMMORPGCharacter::AMMORPGCharacter()
{
	PredictedMovement = CreateDefaultSubobject<UMMOPredictedMovementComponent>(TEXT("PredictedMovement"));
	Resources = CreateDefaultSubobject<UResourceSystemComponent>(TEXT("Resources"));
	Combat = CreateDefaultSubobject<UCombatComponent>(TEXT("Combat"));
	Inventory = CreateDefaultSubobject<UInventoryComponent>(TEXT("Inventory"));
}

void AMMORPGCharacter::BeginPlay()
{
	Super::BeginPlay();
	// The library simulates movement (exactly as the server); the engine's own character
	// movement would fight it.
	if (UCharacterMovementComponent* EngineMovement = GetCharacterMovement())
	{
		EngineMovement->Deactivate();
	}
	// The simulation tracks the capsule's base; the actor's origin is its centre.
	if (const UCapsuleComponent* Capsule = GetCapsuleComponent())
	{
		PredictedMovement->OriginAboveBaseCm = Capsule->GetScaledCapsuleHalfHeight();
	}
}
