// Lint fixture: a USTRUCT and a UENUM, and a plain struct that is not reflected.
#pragma once

#include "CoreMinimal.h"
#include "LintCleanTypes.generated.h"

UENUM(BlueprintType)
enum class ELintCleanMode : uint8
{
	Idle,
	Busy
};

USTRUCT(BlueprintType)
struct LINTCLEAN_API FLintCleanStats
{
	GENERATED_BODY()

	UPROPERTY(BlueprintReadOnly, Category = "Lint|Stats")
	int32 Count = 0;

	// Not reflected: nested helper type inside a reflected struct.
	struct FInner
	{
		int32 Value = 0;
	};
};

/** Plain C++ type: needs neither GENERATED_BODY nor an API macro. */
struct FLintCleanPlain
{
	float DistanceM = 0.f;
};
