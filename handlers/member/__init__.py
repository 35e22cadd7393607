"""What every user does in the private chat: start, help, language, privacy, checkout, payments, orders, coupons."""
