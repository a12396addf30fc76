// UInventoryComponent: inventory requests over the mmo C ABI, their answers, and the slots
// re-read from the session on every INVENTORY_CHANGED.
#include "InventoryComponent.h"

#include "MMOLog.h"
#include "MMONetState.h"

namespace
{
/** Equipment slots of the library (MMO_EQUIP_SLOT_HEAD..=MMO_EQUIP_SLOT_RING). */
constexpr uint32_t EquipSlotCount = static_cast<uint32_t>(MMO_EQUIP_SLOT_RING) + 1;

FMMOItemSlot ToItemSlot(const mmo_item_slot& Slot)
{
	FMMOItemSlot Out;
	Out.bPresent = Slot.present != 0;
	Out.ItemId = static_cast<int32>(Slot.item_id);
	Out.Quantity = static_cast<int32>(Slot.quantity);
	Out.PropertyCount = static_cast<int32>(Slot.property_count);
	return Out;
}
}

void UInventoryComponent::BeginPlay()
{
	Super::BeginPlay();
	FMMONetState* State = MMOFindNetState(*this);
	if (State == nullptr)
	{
		return;
	}
	Subscription = State->Router.subscribe(mmo::ue::EventChannel::Inventory, [this](const mmo::ClientEvent& Event) {
		if (Event.kind() == MMO_CLIENT_EVENT_KIND_INVENTORY_CHANGED)
		{
			RefreshFromSession();
			return;
		}
		OnInventoryResult.Broadcast(static_cast<int32>(Event.event.request), Event.event.accepted != 0,
			FString(UTF8_TO_TCHAR(Event.refusal_kind().c_str())), FString(UTF8_TO_TCHAR(Event.text.c_str())));
	});
}

void UInventoryComponent::EndPlay(const EEndPlayReason::Type EndPlayReason)
{
	MMOUnsubscribe(*this, Subscription);
	Super::EndPlay(EndPlayReason);
}

void UInventoryComponent::RefreshFromSession()
{
	FMMONetState* State = MMOFindNetState(*this);
	const mmo::Client* Client = State ? State->GetClient() : nullptr;
	if (Client == nullptr)
	{
		return;
	}
	const mmo::Result<std::size_t> Count = Client->inventory_slot_count();
	if (!Count.ok())
	{
		UE_LOG(LogMMO, Warning, TEXT("MMO inventory unreadable: %s"), *MMOLastError(Count.status()));
		return;
	}
	Slots.Empty();
	for (std::size_t Index = 0; Index < *Count; ++Index)
	{
		const mmo::Result<mmo_item_slot> Slot = Client->inventory_slot(static_cast<uint32_t>(Index));
		Slots.Add(Slot.ok() ? ToItemSlot(*Slot) : FMMOItemSlot());
	}
	Equipment.Empty();
	for (uint32_t EquipSlot = 0; EquipSlot < EquipSlotCount; ++EquipSlot)
	{
		const mmo::Result<mmo_item_slot> Slot = Client->equipment_slot(static_cast<mmo_equip_slot>(EquipSlot));
		Equipment.Add(Slot.ok() ? ToItemSlot(*Slot) : FMMOItemSlot());
	}
	OnInventoryChanged.Broadcast();
}

int32 UInventoryComponent::SendOperation(const TCHAR* What, int32 A, int32 B, int32 C, int32 Kind)
{
	FMMONetState* State = MMOFindNetState(*this);
	mmo::Client* Client = State ? State->GetClient() : nullptr;
	if (Client == nullptr)
	{
		UE_LOG(LogMMO, Warning, TEXT("MMO inventory %s not sent: no session"), What);
		return 0;
	}
	if (A < 0 || B < 0 || C < 0)
	{
		UE_LOG(LogMMO, Warning, TEXT("MMO inventory %s not sent: slots and quantities must not be negative (%d, %d, %d)"), What, A, B, C);
		return 0;
	}
	const uint32_t UA = static_cast<uint32_t>(A);
	const uint32_t UB = static_cast<uint32_t>(B);
	const uint32_t UC = static_cast<uint32_t>(C);
	mmo_inventory_op Op{};
	switch (Kind)
	{
	case MMO_INVENTORY_OP_KIND_MOVE: Op = mmo::inventory::move(UA, UB); break;
	case MMO_INVENTORY_OP_KIND_SPLIT: Op = mmo::inventory::split(UA, UB, UC); break;
	case MMO_INVENTORY_OP_KIND_MERGE: Op = mmo::inventory::merge(UA, UB); break;
	case MMO_INVENTORY_OP_KIND_SWAP: Op = mmo::inventory::swap(UA, UB); break;
	case MMO_INVENTORY_OP_KIND_DROP: Op = mmo::inventory::drop(UA, UC); break;
	case MMO_INVENTORY_OP_KIND_USE: Op = mmo::inventory::use(UA); break;
	case MMO_INVENTORY_OP_KIND_EQUIP: Op = mmo::inventory::equip(UA); break;
	case MMO_INVENTORY_OP_KIND_UNEQUIP: Op = mmo::inventory::unequip(static_cast<mmo_equip_slot>(UA), UB); break;
	default:
		UE_LOG(LogMMO, Error, TEXT("MMO inventory %s: unknown operation kind %d"), What, Kind);
		return 0;
	}
	const mmo::Result<uint32_t> Request = Client->inventory_op(Op);
	if (!Request.ok())
	{
		UE_LOG(LogMMO, Warning, TEXT("MMO inventory %s not sent: %s"), What, *MMOLastError(Request.status()));
		return 0;
	}
	return static_cast<int32>(*Request);
}

int32 UInventoryComponent::MoveItem(int32 FromSlot, int32 ToSlot)
{
	return SendOperation(TEXT("move"), FromSlot, ToSlot, 0, MMO_INVENTORY_OP_KIND_MOVE);
}

int32 UInventoryComponent::SplitStack(int32 FromSlot, int32 ToSlot, int32 Quantity)
{
	return SendOperation(TEXT("split"), FromSlot, ToSlot, Quantity, MMO_INVENTORY_OP_KIND_SPLIT);
}

int32 UInventoryComponent::MergeStacks(int32 FromSlot, int32 ToSlot)
{
	return SendOperation(TEXT("merge"), FromSlot, ToSlot, 0, MMO_INVENTORY_OP_KIND_MERGE);
}

int32 UInventoryComponent::SwapSlots(int32 SlotA, int32 SlotB)
{
	return SendOperation(TEXT("swap"), SlotA, SlotB, 0, MMO_INVENTORY_OP_KIND_SWAP);
}

int32 UInventoryComponent::DropItem(int32 Slot, int32 Quantity)
{
	return SendOperation(TEXT("drop"), Slot, 0, Quantity, MMO_INVENTORY_OP_KIND_DROP);
}

int32 UInventoryComponent::UseItem(int32 Slot)
{
	return SendOperation(TEXT("use"), Slot, 0, 0, MMO_INVENTORY_OP_KIND_USE);
}

int32 UInventoryComponent::EquipItem(int32 Slot)
{
	return SendOperation(TEXT("equip"), Slot, 0, 0, MMO_INVENTORY_OP_KIND_EQUIP);
}

int32 UInventoryComponent::UnequipItem(int32 EquipSlot, int32 ToSlot)
{
	if (EquipSlot < 0 || static_cast<uint32_t>(EquipSlot) >= EquipSlotCount)
	{
		UE_LOG(LogMMO, Warning, TEXT("MMO inventory unequip not sent: equipment slot %d is not 0..%u"), EquipSlot, EquipSlotCount - 1);
		return 0;
	}
	return SendOperation(TEXT("unequip"), EquipSlot, ToSlot, 0, MMO_INVENTORY_OP_KIND_UNEQUIP);
}
