// UMMOPredictedMovementComponent: one quantized input per simulation tick (the library
// predicts it and sends it redundantly), and the owner placed at the library's render
// position every frame. Units only through mmo::ue (Logic/Units.h).
#include "MMOPredictedMovementComponent.h"

#include "GameFramework/Actor.h"
#include "Logic/Units.h"
#include "MMODeveloperSettings.h"
#include "MMOLog.h"
#include "MMONetState.h"

namespace
{
/** Longest frame time simulated at once, seconds: a hitch sends at most this many ticks. */
constexpr float MaxCatchUpSeconds = 0.25f;
}

UMMOPredictedMovementComponent::UMMOPredictedMovementComponent()
{
	PrimaryComponentTick.bCanEverTick = true;
}

void UMMOPredictedMovementComponent::BeginPlay()
{
	Super::BeginPlay();
	FMMONetState* State = MMOFindNetState(*this);
	if (State == nullptr)
	{
		UE_LOG(LogMMO, Warning, TEXT("MMO predicted movement: no net subsystem; the owner will not move"));
		return;
	}
	CorrectionSubscription = State->Router.subscribe(mmo::ue::EventChannel::Correction, [this](const mmo::ClientEvent& Event) {
		++CorrectionCount;
		OnCorrected.Broadcast(static_cast<float>(mmo::ue::distance_from_core(Event.event.position_error_m)), static_cast<int32>(Event.event.replayed_inputs));
	});
}

void UMMOPredictedMovementComponent::EndPlay(const EEndPlayReason::Type EndPlayReason)
{
	MMOUnsubscribe(*this, CorrectionSubscription);
	Super::EndPlay(EndPlayReason);
}

void UMMOPredictedMovementComponent::AddMoveInput(float Forward, float Right)
{
	PendingForward += Forward;
	PendingRight += Right;
}

void UMMOPredictedMovementComponent::SetControlYaw(float YawDegrees)
{
	ControlYawDegrees = YawDegrees;
}

void UMMOPredictedMovementComponent::SetSprinting(bool bInSprinting)
{
	bSprinting = bInSprinting;
}

void UMMOPredictedMovementComponent::Jump()
{
	bJumpPending = true;
}

UMMONetSubsystem* UMMOPredictedMovementComponent::FindSubsystem() const
{
	return MMOFindSubsystem(*this);
}

void UMMOPredictedMovementComponent::SendTickInput(UMMONetSubsystem& Subsystem)
{
	mmo::Client* Client = Subsystem.GetNetState()->GetClient();
	uint8 Buttons = 0;
	Buttons |= bSprinting ? MMO_BUTTON_SPRINT : 0;
	Buttons |= bJumpPending ? MMO_BUTTON_JUMP : 0;
	const mmo::Result<mmo_move_input> Input = mmo::ue::controls_to_input(PendingForward, PendingRight, ControlYawDegrees, Buttons);
	if (!Input.ok())
	{
		UE_LOG(LogMMO, Error, TEXT("MMO movement input refused: %s"), *MMOLastError(Input.status()));
		return;
	}
	const mmo::Status Sent = Client->send_input(*Input);
	if (!Sent.ok())
	{
		UE_LOG(LogMMO, Warning, TEXT("MMO movement input not sent: %s"), *MMOLastError(Sent));
		return;
	}
	bJumpPending = false;
	++InputsSent;
}

void UMMOPredictedMovementComponent::TickComponent(float DeltaTime, ELevelTick TickType, FActorComponentTickFunction* ThisTickFunction)
{
	Super::TickComponent(DeltaTime, TickType, ThisTickFunction);
	UMMONetSubsystem* Subsystem = FindSubsystem();
	FMMONetState* State = Subsystem ? Subsystem->GetNetState() : nullptr;
	mmo::Client* Client = State ? State->GetClient() : nullptr;
	if (Client == nullptr || !Subsystem->IsConnected())
	{
		PendingForward = 0.0f;
		PendingRight = 0.0f;
		TickAccumulatorSeconds = 0.0f;
		return;
	}

	const int32 TickRateHz = GetDefault<UMMODeveloperSettings>()->TickRateHz;
	const float TickSeconds = 1.0f / static_cast<float>(TickRateHz > 0 ? TickRateHz : 30);
	TickAccumulatorSeconds += DeltaTime < MaxCatchUpSeconds ? DeltaTime : MaxCatchUpSeconds;
	bool bSentAny = false;
	while (TickAccumulatorSeconds >= TickSeconds)
	{
		TickAccumulatorSeconds -= TickSeconds;
		SendTickInput(*Subsystem);
		bSentAny = true;
	}
	if (bSentAny)
	{
		PendingForward = 0.0f;
		PendingRight = 0.0f;
	}

	(void)Client->advance_visual(DeltaTime);
	const mmo::Result<mmo_local_state> Local = Client->local_state();
	AActor* Owner = GetOwner();
	if (!Local.ok() || Owner == nullptr)
	{
		return;
	}
	const FVector Base = mmo::ue::location_from_core<FVector>(Local->render_position_m);
	const FVector Origin(Base.X, Base.Y, Base.Z + static_cast<double>(OriginAboveBaseCm));
	Owner->SetActorLocationAndRotation(Origin, FRotator(0.0, mmo::ue::core_rad_to_yaw_deg(Local->predicted.yaw_rad), 0.0));
	PredictedVelocity = mmo::ue::location_from_core<FVector>(Local->predicted.velocity_mps);
	bOnGround = Local->predicted.on_ground != 0;
}
