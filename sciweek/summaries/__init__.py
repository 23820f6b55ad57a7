"""Activity summaries (活动总结): what happened at an activity, with experts and photos."""
