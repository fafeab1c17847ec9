// Window/level presets (Hounsfield units), the usual CT values; keys 1-4 choose them, 0 goes
// back to the window stored in the images.
export interface Preset {
  key: string;
  name: string;
  width: number;
  center: number;
}

export const CT_PRESETS: Preset[] = [
  { key: '1', name: 'Brain', width: 80, center: 40 },
  { key: '2', name: 'Lung', width: 1500, center: -600 },
  { key: '3', name: 'Bone', width: 1800, center: 400 },
  { key: '4', name: 'Abdomen', width: 400, center: 50 },
];
