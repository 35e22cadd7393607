"""What happens in the group: the bot joining, members coming and going, buying and group-buys from the cards."""
