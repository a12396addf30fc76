// The local character's inventory: bag slots and equipment as the server last sent them,
// and the operations (move, split, merge, swap, drop, use, equip, unequip) sent as requests
// whose answers come back as OnInventoryResult.
#pragma once

#include "CoreMinimal.h"
#include "Components/ActorComponent.h"
#include "InventoryComponent.generated.h"

/** One bag or equipment slot. */
USTRUCT(BlueprintType)
struct MMOCORE_API FMMOItemSlot
{
	GENERATED_BODY()

	UPROPERTY(BlueprintReadOnly, Category = "MMO|Inventory")
	bool bPresent = false;

	/** The content's item id (0 when empty). */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Inventory")
	int32 ItemId = 0;

	UPROPERTY(BlueprintReadOnly, Category = "MMO|Inventory")
	int32 Quantity = 0;

	/** Per-instance properties of the stack. */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Inventory")
	int32 PropertyCount = 0;
};

DECLARE_DYNAMIC_MULTICAST_DELEGATE(FMMOInventoryChangedSignature);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_FourParams(FMMOInventoryResultSignature, int32, RequestId, bool, bAccepted, const FString&, RefusalKind, const FString&, Message);

UCLASS(ClassGroup = (MMO), meta = (BlueprintSpawnableComponent))
class MMOCORE_API UInventoryComponent : public UActorComponent
{
	GENERATED_BODY()

public:
	virtual void BeginPlay() override;
	virtual void EndPlay(const EEndPlayReason::Type EndPlayReason) override;

	// Operations: each returns the request number echoed by OnInventoryResult, or 0 when it
	// could not be sent (negative slot numbers, no session: logged). Slot numbers themselves
	// are checked by the server, which refuses a bad one as "inventory_bad_slot".

	UFUNCTION(BlueprintCallable, Category = "MMO|Inventory")
	int32 MoveItem(int32 FromSlot, int32 ToSlot);

	UFUNCTION(BlueprintCallable, Category = "MMO|Inventory")
	int32 SplitStack(int32 FromSlot, int32 ToSlot, int32 Quantity);

	UFUNCTION(BlueprintCallable, Category = "MMO|Inventory")
	int32 MergeStacks(int32 FromSlot, int32 ToSlot);

	UFUNCTION(BlueprintCallable, Category = "MMO|Inventory")
	int32 SwapSlots(int32 SlotA, int32 SlotB);

	UFUNCTION(BlueprintCallable, Category = "MMO|Inventory")
	int32 DropItem(int32 Slot, int32 Quantity);

	UFUNCTION(BlueprintCallable, Category = "MMO|Inventory")
	int32 UseItem(int32 Slot);

	UFUNCTION(BlueprintCallable, Category = "MMO|Inventory")
	int32 EquipItem(int32 Slot);

	/** EquipSlot: mmo_equip_slot (0 head ... 8 ring). */
	UFUNCTION(BlueprintCallable, Category = "MMO|Inventory")
	int32 UnequipItem(int32 EquipSlot, int32 ToSlot);

	/** Bag slots, as the server last sent them. */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Inventory")
	TArray<FMMOItemSlot> Slots;

	/** Equipment, indexed by mmo_equip_slot. */
	UPROPERTY(BlueprintReadOnly, Category = "MMO|Inventory")
	TArray<FMMOItemSlot> Equipment;

	UPROPERTY(BlueprintAssignable, Category = "MMO|Inventory")
	FMMOInventoryChangedSignature OnInventoryChanged;

	UPROPERTY(BlueprintAssignable, Category = "MMO|Inventory")
	FMMOInventoryResultSignature OnInventoryResult;

	/** C++ only: re-reads slots and equipment from the session (called by the event routing). */
	void RefreshFromSession();

private:
	int32 SendOperation(const TCHAR* What, int32 A, int32 B, int32 C, int32 Kind);

	uint64 Subscription = 0;
};
