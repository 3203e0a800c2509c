"""Multi-stage recipes on top of MD: melt–quench (``melt_quench``, its config), the amorphous-LiPON recipe
(``lipon``), glass on a substrate and interface relaxation (``interface_quench``), the Li melting check."""
