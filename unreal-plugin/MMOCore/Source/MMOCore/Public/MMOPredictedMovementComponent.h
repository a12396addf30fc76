// Drives the local character: gathers movement input, sends one quantized input per
// simulation tick through the subsystem (the library predicts it at once), and places the
// owner where the library says to draw it (prediction plus the smoothed correction).
#pragma once

#include "CoreMinimal.h"
#include "Components/ActorComponent.h"
#include "MMOPredictedMovementComponent.generated.h"

class UMMONetSubsystem;

DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(FMMOCorrectedSignature, float, ErrorCm, int32, ReplayedInputs);

UCLASS(ClassGroup = (MMO), meta = (BlueprintSpawnableComponent))
class MMOCORE_API UMMOPredictedMovementComponent : public UActorComponent
{
	GENERATED_BODY()

public:
	UMMOPredictedMovementComponent();

	virtual void BeginPlay() override;
	virtual void EndPlay(const EEndPlayReason::Type EndPlayReason) override;
	virtual void TickComponent(float DeltaTime, ELevelTick TickType, FActorComponentTickFunction* ThisTickFunction) override;

	/** Adds to this tick's movement axes (each clamped to [-1, 1] when sent). */
	UFUNCTION(BlueprintCallable, Category = "MMO|Movement")
	void AddMoveInput(float Forward, float Right);

	/** Sets the facing the inputs carry, Unreal degrees. */
	UFUNCTION(BlueprintCallable, Category = "MMO|Movement")
	void SetControlYaw(float YawDegrees);

	/** Holds or releases sprint. */
	UFUNCTION(BlueprintCallable, Category = "MMO|Movement")
	void SetSprinting(bool bInSprinting);

	/** Jumps on the next simulation tick. */
	UFUNCTION(BlueprintCallable, Category = "MMO|Movement")
	void Jump();

	/** Predicted velocity, cm/s. */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Movement")
	FVector PredictedVelocity = FVector::ZeroVector;

	/** Predicted: standing on walkable support (ground, terrain or a shape). */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Movement")
	bool bOnGround = true;

	/** Inputs sent since the session started. */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Movement")
	int32 InputsSent = 0;

	/** Corrections from the server so far. */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Movement")
	int32 CorrectionCount = 0;

	/** Height of the actor's origin above the simulated capsule base, cm (a character's capsule half height). */
	UPROPERTY(EditAnywhere, BlueprintReadWrite, Category = "MMO|Movement")
	float OriginAboveBaseCm = 0.0f;

	/** The server corrected the prediction (error in cm; the library smooths it out). */
	UPROPERTY(BlueprintAssignable, Category = "MMO|Movement")
	FMMOCorrectedSignature OnCorrected;

private:
	UMMONetSubsystem* FindSubsystem() const;
	void SendTickInput(UMMONetSubsystem& Subsystem);

	/** Axes gathered since the last sent input. */
	float PendingForward = 0.0f;
	float PendingRight = 0.0f;
	float ControlYawDegrees = 0.0f;
	bool bSprinting = false;
	bool bJumpPending = false;
	/** Frame time not yet covered by a simulation tick, seconds (< one tick). */
	float TickAccumulatorSeconds = 0.0f;
	/** Router subscription of corrections (0: none). */
	uint64 CorrectionSubscription = 0;
};
