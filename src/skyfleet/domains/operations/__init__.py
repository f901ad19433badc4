"""Operations: user-visible units of work, each made of one task per site."""
