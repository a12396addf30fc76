// Lint fixture: a UINTERFACE pair.
#pragma once

#include "CoreMinimal.h"
#include "UObject/Interface.h"
#include "LintCleanInterface.generated.h"

UINTERFACE(MinimalAPI, Blueprintable)
class ULintCleanInterface : public UInterface
{
	GENERATED_BODY()
};

class LINTCLEAN_API ILintCleanInterface
{
	GENERATED_BODY()

public:
	UFUNCTION(BlueprintNativeEvent, Category = "Lint")
	void Poke();
};
