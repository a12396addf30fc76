// AMMORemoteCharacter: every frame, the interpolated (or extrapolated) position and facing
// of its entity from the library, through the subsystem.
#include "MMORemoteCharacter.h"

#include "Components/CapsuleComponent.h"
#include "Engine/GameInstance.h"
#include "Engine/World.h"
#include "GameFramework/CharacterMovementComponent.h"
#include "MMONetSubsystem.h"

AMMORemoteCharacter::AMMORemoteCharacter()
{
	PrimaryActorTick.bCanEverTick = true;
}

void AMMORemoteCharacter::InitRemote(int32 InEntityId, int32 InArchetype)
{
	EntityId = InEntityId;
	Archetype = InArchetype;
	// The library places this actor; the engine's character movement must not.
	if (UCharacterMovementComponent* EngineMovement = GetCharacterMovement())
	{
		EngineMovement->Deactivate();
	}
}

void AMMORemoteCharacter::Tick(float DeltaSeconds)
{
	Super::Tick(DeltaSeconds);
	const UGameInstance* GameInstance = GetGameInstance();
	const UMMONetSubsystem* Subsystem = GameInstance ? GameInstance->GetSubsystem<UMMONetSubsystem>() : nullptr;
	if (Subsystem == nullptr || EntityId == 0)
	{
		return;
	}
	FVector Base;
	FRotator Rotation;
	bool bExtrapolatingNow = false;
	int32 Health = HealthPercent;
	if (!Subsystem->SampleRemoteEntity(EntityId, Base, Rotation, bExtrapolatingNow, Health))
	{
		return;
	}
	const UCapsuleComponent* Capsule = GetCapsuleComponent();
	const double OriginAboveBaseCm = Capsule ? static_cast<double>(Capsule->GetScaledCapsuleHalfHeight()) : 0.0;
	SetActorLocationAndRotation(FVector(Base.X, Base.Y, Base.Z + OriginAboveBaseCm), Rotation);
	bExtrapolating = bExtrapolatingNow;
	HealthPercent = Health;
}
