/** The version every DSG component reports. */
export const DSG_VERSION = '0.1.0';
