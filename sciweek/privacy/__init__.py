"""Personal information: showing a full phone number on purpose (显示完整号码), logged."""
